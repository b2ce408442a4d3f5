"""robot-irl: learning from demonstration for robot arms."""
__version__ = "0.1.0"
