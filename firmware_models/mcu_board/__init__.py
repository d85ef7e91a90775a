"""Host side of the microcontroller class: build the firmware and the host library, feed it frames of
a real clip over its UART, bridge its MQTT bytes to the real broker, and check it against onnxruntime.

The board is QEMU's ``mps2-an500`` (Cortex-M7); the firmware and the C library live in
``firmware_models/mcu``. See docs/mcu.md.
"""
