"""Order status told back to the partner platform an order came from, through the platform's adapter."""
