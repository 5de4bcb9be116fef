"""Helpers shared by the test suites: real servers, processes and databases, no mocks."""
