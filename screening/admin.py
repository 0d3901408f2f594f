"""Screening records are clinical: they are written through the app's services, not the admin."""
