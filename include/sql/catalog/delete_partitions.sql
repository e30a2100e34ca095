-- Leaf partitions are not catalog objects of their own once rolled up into their root.
DELETE FROM catalog_snapshot WHERE root_oid IS NOT NULL
