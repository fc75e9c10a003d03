"""Modules that own parameters: layers, recurrent networks, cells."""
