"""The platforms a connector worker pool serves (spec section 1 item 4)."""

PLATFORMS = ("intune", "jamf", "sccm", "landscape", "ansible")
