#pragma once
// The coroutine rules archie's code follows because of GCC 12 (Debian bookworm's compiler).
// They are written here once; code that bends around them says "GCC 12 rule (async/gcc12_coroutines.hpp)".
//
// 1. No temporaries with non-trivial destructors inside a co_await expression: GCC 12 destroys
//    them twice (double frees under ASan). Pass named objects (`auto c = make_call(...);
//    co_await run(c);`), never braced temporaries or `std::string("x")` arguments.
// 2. Coroutine parameters are references or trivially destructible values: a by-value
//    std::string / shared_ptr parameter of a coroutine is mis-destroyed the same way.
// 3. No string-literal aggregate initialisers in a coroutine frame ("array used as
//    initializer"): build such structs in plain functions outside the coroutine.
// 4. Callables handed to another thread (async::run_blocking) are named objects in the
//    caller's frame; only a pointer travels, and the caller stays suspended until done.
