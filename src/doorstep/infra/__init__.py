"""Adapters to the outside: databases, brokers, HTTP clients."""
