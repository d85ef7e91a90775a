"""Home Assistant MQTT discovery (optional, off unless ``cloud-hub homeassistant`` runs)."""
