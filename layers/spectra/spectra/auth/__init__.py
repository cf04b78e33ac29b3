"""Authentication and authorization: API keys that are hashed at rest, and scopes that bound them.

``credentials`` is the key format (type, id, secret, checksum) and its keyed hash; ``scopes`` is
the action + resource-filter grammar every route is checked against; ``network`` is the optional
source-IP allow-list; ``authorizer`` turns a key into the API Gateway policy and context.
"""
