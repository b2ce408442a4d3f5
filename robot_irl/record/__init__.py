"""Recorders that write episodes into the demo library: the sim's scripted expert, and cameras
(a device, a stream URL or a video file on disk)."""
