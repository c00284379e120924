"""Meal-delivery simulation (MDRP): replays a day of orders and couriers under a dispatch policy."""
