"""The delivery API's pure model: rate cards and their pricing, quotes, deliveries."""
