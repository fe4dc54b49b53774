"""Identity properties of the VSA algebra (trit and MAP)."""

PROPERTIES: dict = {}
