// Bs switch, bare floor: two Boost.Context contexts (main and one fiber)
// jump to each other with jump_fcontext, 10,000,000 jumps in total; prints
// ns per jump. No scheduler, no queue: just the register save/restore.
#include <boost/context/detail/fcontext.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace ctx = boost::context::detail;

// The fiber: each time it is resumed it jumps straight back.
static void bounce(ctx::transfer_t t) {
    for (;;)
        t = ctx::jump_fcontext(t.fctx, nullptr);
}

int main() {
    const long n = 10000000;
    const std::size_t stack_size = 64 * 1024;
    char *stack = static_cast<char *>(std::malloc(stack_size));
    if (!stack)
        return 1;
    ctx::transfer_t t{ctx::make_fcontext(stack + stack_size, stack_size, bounce),
                      nullptr};

    for (int i = 0; i < 100000; i++) // warm-up, not timed
        t = ctx::jump_fcontext(t.fctx, nullptr);

    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n / 2; i++) // two jumps per iteration: there and back
        t = ctx::jump_fcontext(t.fctx, nullptr);
    auto end = std::chrono::steady_clock::now();

    double ns = std::chrono::duration<double, std::nano>(end - start).count();
    std::printf("switch_ns %.2f ns/switch\n", ns / n);
    return 0;
}
