"""Business services over storage: users, groups, memberships. No Flask here."""
