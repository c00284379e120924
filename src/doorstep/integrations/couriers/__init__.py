"""Couriers on demand: third-party delivery (DoorDash Drive, Uber Direct) behind one port."""
