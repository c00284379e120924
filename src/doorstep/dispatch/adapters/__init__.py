"""Dispatch adapters: tables, repositories, the unit of work and the geo stores."""
