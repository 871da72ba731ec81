module kiln.pkg/go-http

go 1.19
