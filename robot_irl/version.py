"""The package version, in a module of its own: a stage can read it without importing the package
root, whose conveniences (``robot_irl.load_run``) stand above every stage."""
__version__ = "0.1.0"
