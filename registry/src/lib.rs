//! `mcache-registry`: placeholder until its issue lands (see the project's issues).
