"""Throwaway servers and sample data for the demo, the tests and the screenshots."""
