"""Built-in payload validators (entry point group `wampgate.validators`)."""
