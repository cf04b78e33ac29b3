"""pydantic v2 models for every request body and response (the OpenAPI document comes from them)."""
