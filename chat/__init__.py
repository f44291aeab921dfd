"""Chat that is kept: messages are stored before they are broadcast."""
