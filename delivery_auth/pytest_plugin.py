"""pytest plugin of delivery-auth (fixtures arrive with the emulator)."""
