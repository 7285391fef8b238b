"""The target the suite's models are compiled for: MICROTRAIN_TEST_TARGET
(default host). conftest.py makes compile / compile_graph / compile_training
default to it; tests that must know it (e.g. whether it has hardware FMA)
import it from here."""
import os

TEST_TARGET = os.environ.get("MICROTRAIN_TEST_TARGET", "host")
