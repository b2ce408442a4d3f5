"""PyBullet scenes and gymnasium environments."""
