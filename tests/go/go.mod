module kiln.test/goprocs

go 1.19
