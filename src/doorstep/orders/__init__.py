"""Orders: intake from every channel, the lifecycle, the status history."""
