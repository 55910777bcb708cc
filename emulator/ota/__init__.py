"""ZigBee OTA Upgrade cluster (0x0019): image format, frame codec, server and client engines."""
