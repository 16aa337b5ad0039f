"""GET /api/labels: the Korean names of the values clients show (written once, here on the server)."""
