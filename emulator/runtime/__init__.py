"""Time and scheduling shared by every layer (virtual time for tests, fleets and the demo)."""
