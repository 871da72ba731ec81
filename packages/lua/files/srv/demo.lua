-- A small Lua program that exercises the interpreter: recursion, tables, the string
-- library, coroutines and error handling. Its output is the smoke test's expected stdout.
local label = arg[1] or "demo"
print(string.format("%s on Kiln (%s)", _VERSION, label))

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end
print("fib(25) = " .. fib(25))

local fruit = { "kiwi", "banana", "cherry", "apple" }
table.sort(fruit)
print("sorted: " .. table.concat(fruit, " "))

print("gsub: " .. (("hello world"):gsub("[aeiou]", "*")))

local co = coroutine.wrap(function()
  for i = 1, 3 do coroutine.yield(i) end
end)
print("coroutine: " .. co() .. " " .. co() .. " " .. co())

local ok, err = pcall(function() error("boom", 0) end)
print("pcall: " .. tostring(ok) .. " " .. err)
