"""One repository per aggregate; each takes a Session and a tenant id and scopes every query by it."""
