"""The one window: citizen requests from every channel, routed, tracked and rated."""
