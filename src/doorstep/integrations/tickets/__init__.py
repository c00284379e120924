"""Support tickets on orders, inbound deliveries, connections and webhook endpoints."""
