-- Cubemap delivery (issue 17): TRUE makes every rendition of the stream an
-- equi-angular cubemap (3x2) instead of equirect. Portable SQL, like 0001.
ALTER TABLE streams ADD COLUMN cubemap BOOLEAN NOT NULL DEFAULT FALSE;
