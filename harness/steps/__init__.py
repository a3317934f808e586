"""The pytest-bdd step vocabulary: thin sentences, each one harness call (see `drill steps`)."""
