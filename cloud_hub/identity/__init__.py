"""Device identity and broker lockdown (issue 7).

One stolen camera must open nothing else: every device has its own broker credentials and a role that
lets it publish only its own edge → hub topics and read only its own hub → edge topics. The hub keeps a
salted hash of each device secret (never the secret) and drives Mosquitto's dynamic security plugin
over MQTT, so revoking a device takes effect on the live connection, not at the next restart.
"""
