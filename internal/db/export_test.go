package db

// ApplyFunctions is applyFunctions, for tests with functions of their own.
var ApplyFunctions = applyFunctions
