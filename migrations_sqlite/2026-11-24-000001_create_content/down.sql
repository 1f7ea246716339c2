DROP TABLE canvas_edges;
DROP TABLE canvas_nodes;
DROP TABLE canvases;
DROP TABLE blocks;
DROP TABLE documents;
DROP TABLE workspaces;
