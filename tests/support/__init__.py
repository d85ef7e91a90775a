"""Real parts for tests: a Mosquitto broker per fixture, a throwaway PostgreSQL database."""
