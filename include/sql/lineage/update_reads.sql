-- Store what one definition ({table}) reads, unless its SQL or declared relations changed meanwhile.
UPDATE {table}
SET reads = %(reads)s, reads_origin = %(reads_origin)s, reads_note = %(reads_note)s,
    reads_hash = %(reads_hash)s, reads_found_at = now()
WHERE id = %(id)s
  AND md5(coalesce(sql, '') || E'\n' || coalesce(array_to_string(declared_reads, ','), '')) = %(reads_hash)s
