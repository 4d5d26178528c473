"""The overview of an organization or one of its clusters: one read across gateways, metering,
billing, the catalog and the audit log. It sits above all of them, so none of them imports it."""
