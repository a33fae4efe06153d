"""What the service writes: who gets which letter, and a template turned into final bytes."""
