"""Services: the domain rules of each capability, between the routes and the repositories."""
