import '../worker-bootstrap.mjs';
