"""Development tools: the seed data, the demo (`idp demo`) and the development pages."""
