-- One database per subgraph: no subgraph can read another's tables.
CREATE DATABASE users;
CREATE DATABASE products;
CREATE DATABASE orders;
CREATE DATABASE inventory;
