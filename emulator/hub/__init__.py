"""The Comms Hub: stores images from the WAN, serves them over the HAN, reports upstream."""
