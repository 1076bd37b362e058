-- The CHECKs repeat the resolvers' validation so no other writer can store a product the API would refuse.
CREATE TABLE products (
  id uuid PRIMARY KEY,
  -- Byte order ("C") keeps the listing order, and so the cursors, the same on every server and locale.
  sku text COLLATE "C" NOT NULL UNIQUE CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description text NOT NULL CHECK (length(description) <= 5000),
  price_amount integer NOT NULL CHECK (price_amount > 0),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  category text NOT NULL CHECK (length(category) BETWEEN 1 AND 50 AND category = lower(category)),
  weight_grams integer NOT NULL CHECK (weight_grams > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The UNIQUE constraint's index on sku serves the unfiltered listing; these serve the filtered ones in the same order.
CREATE INDEX products_category_sku_idx ON products (category, sku);

CREATE INDEX products_price_amount_idx ON products (price_amount);
