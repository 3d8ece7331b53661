using System.Numerics;

namespace Etcd.Storage.Mvcc;

/// <summary>
/// An unstable in-place sort that orders equal elements exactly as Go 1.19's <c>sort.Sort</c>
/// (pattern-defeating quicksort, deterministic pattern breaking) does. etcd 3.4.23 (built with Go 1.19)
/// sorts Range results with it, so ties under a non-key sort target (e.g. <c>--sort-by VERSION</c>) come out
/// in this order; a stable sort would order them differently for more than 12 results.
/// Not thread-safe over the same span.
/// </summary>
internal static class GoSort
{
    private const int MaxInsertion = 12;

    private enum Hint
    {
        Unknown,
        Increasing,
        Decreasing,
    }

    /// <summary>Sorts <paramref name="items"/> by <paramref name="less"/> (a strict "a before b").</summary>
    public static void Sort<T>(Span<T> items, Func<T, T, bool> less)
    {
        if (items.Length <= 1)
        {
            return;
        }

        var s = new Sorter<T>(less);
        s.Pdq(items, 0, items.Length, BitLength((uint)items.Length));
    }

    private static int BitLength(uint x) => 32 - BitOperations.LeadingZeroCount(x);

    private readonly struct Sorter<T>(Func<T, T, bool> less)
    {
        private static void Swap(Span<T> d, int i, int j) => (d[i], d[j]) = (d[j], d[i]);

        private bool Less(Span<T> d, int i, int j) => less(d[i], d[j]);

        public void Pdq(Span<T> d, int a, int b, int limit)
        {
            var wasBalanced = true;
            var wasPartitioned = true;
            while (true)
            {
                var length = b - a;
                if (length <= MaxInsertion)
                {
                    InsertionSort(d, a, b);
                    return;
                }

                if (limit == 0)
                {
                    HeapSort(d, a, b);
                    return;
                }

                if (!wasBalanced)
                {
                    BreakPatterns(d, a, b);
                    limit--;
                }

                var (pivot, hint) = ChoosePivot(d, a, b);
                if (hint == Hint.Decreasing)
                {
                    ReverseRange(d, a, b);
                    pivot = (b - 1) - (pivot - a);
                    hint = Hint.Increasing;
                }

                if (wasBalanced && wasPartitioned && hint == Hint.Increasing && PartialInsertionSort(d, a, b))
                {
                    return;
                }

                if (a > 0 && !Less(d, a - 1, pivot))
                {
                    a = PartitionEqual(d, a, b, pivot);
                    continue;
                }

                var (mid, already) = Partition(d, a, b, pivot);
                wasPartitioned = already;
                int leftLen = mid - a, rightLen = b - mid;
                var threshold = length / 8;
                if (leftLen < rightLen)
                {
                    wasBalanced = leftLen >= threshold;
                    Pdq(d, a, mid, limit);
                    a = mid + 1;
                }
                else
                {
                    wasBalanced = rightLen >= threshold;
                    Pdq(d, mid + 1, b, limit);
                    b = mid;
                }
            }
        }

        private void InsertionSort(Span<T> d, int a, int b)
        {
            for (var i = a + 1; i < b; i++)
            {
                for (var j = i; j > a && Less(d, j, j - 1); j--)
                {
                    Swap(d, j, j - 1);
                }
            }
        }

        private void SiftDown(Span<T> d, int lo, int hi, int first)
        {
            var root = lo;
            while (true)
            {
                var child = (2 * root) + 1;
                if (child >= hi)
                {
                    return;
                }

                if (child + 1 < hi && Less(d, first + child, first + child + 1))
                {
                    child++;
                }

                if (!Less(d, first + root, first + child))
                {
                    return;
                }

                Swap(d, first + root, first + child);
                root = child;
            }
        }

        private void HeapSort(Span<T> d, int a, int b)
        {
            var hi = b - a;
            for (var i = (hi - 1) / 2; i >= 0; i--)
            {
                SiftDown(d, i, hi, a);
            }

            for (var i = hi - 1; i >= 0; i--)
            {
                Swap(d, a, a + i);
                SiftDown(d, 0, i, a);
            }
        }

        private (int Pivot, bool AlreadyPartitioned) Partition(Span<T> d, int a, int b, int pivot)
        {
            Swap(d, a, pivot);
            int i = a + 1, j = b - 1;
            while (i <= j && Less(d, i, a))
            {
                i++;
            }

            while (i <= j && !Less(d, j, a))
            {
                j--;
            }

            if (i > j)
            {
                Swap(d, j, a);
                return (j, true);
            }

            Swap(d, i, j);
            i++;
            j--;
            while (true)
            {
                while (i <= j && Less(d, i, a))
                {
                    i++;
                }

                while (i <= j && !Less(d, j, a))
                {
                    j--;
                }

                if (i > j)
                {
                    break;
                }

                Swap(d, i, j);
                i++;
                j--;
            }

            Swap(d, j, a);
            return (j, false);
        }

        private int PartitionEqual(Span<T> d, int a, int b, int pivot)
        {
            Swap(d, a, pivot);
            int i = a + 1, j = b - 1;
            while (true)
            {
                while (i <= j && !Less(d, a, i))
                {
                    i++;
                }

                while (i <= j && Less(d, a, j))
                {
                    j--;
                }

                if (i > j)
                {
                    return i;
                }

                Swap(d, i, j);
                i++;
                j--;
            }
        }

        private bool PartialInsertionSort(Span<T> d, int a, int b)
        {
            const int maxSteps = 5;
            const int shortestShifting = 50;
            var i = a + 1;
            for (var step = 0; step < maxSteps; step++)
            {
                while (i < b && !Less(d, i, i - 1))
                {
                    i++;
                }

                if (i == b)
                {
                    return true;
                }

                if (b - a < shortestShifting)
                {
                    return false;
                }

                Swap(d, i, i - 1);
                if (i - a >= 2)
                {
                    for (var j = i - 1; j >= 1 && Less(d, j, j - 1); j--)
                    {
                        Swap(d, j, j - 1);
                    }
                }

                if (b - i >= 2)
                {
                    for (var j = i + 1; j < b && Less(d, j, j - 1); j++)
                    {
                        Swap(d, j, j - 1);
                    }
                }
            }

            return false;
        }

        private static void BreakPatterns(Span<T> d, int a, int b)
        {
            var length = b - a;
            if (length < 8)
            {
                return;
            }

            var random = (ulong)length;
            var modulus = 1UL << BitLength((uint)length);
            for (var idx = a + ((length / 4) * 2) - 1; idx <= a + ((length / 4) * 2) + 1; idx++)
            {
                random ^= random << 13;
                random ^= random >> 17;
                random ^= random << 5;
                var other = (int)(random & (modulus - 1));
                if (other >= length)
                {
                    other -= length;
                }

                Swap(d, idx, a + other);
            }
        }

        private (int Pivot, Hint Hint) ChoosePivot(Span<T> d, int a, int b)
        {
            const int shortestNinther = 50;
            const int maxSwaps = 4 * 3;
            var l = b - a;
            var swaps = 0;
            int i = a + (l / 4 * 1), j = a + (l / 4 * 2), k = a + (l / 4 * 3);
            if (l >= 8)
            {
                if (l >= shortestNinther)
                {
                    i = Median(d, i - 1, i, i + 1, ref swaps);
                    j = Median(d, j - 1, j, j + 1, ref swaps);
                    k = Median(d, k - 1, k, k + 1, ref swaps);
                }

                j = Median(d, i, j, k, ref swaps);
            }

            return swaps switch
            {
                0 => (j, Hint.Increasing),
                maxSwaps => (j, Hint.Decreasing),
                _ => (j, Hint.Unknown),
            };
        }

        private (int, int) Order2(Span<T> d, int a, int b, ref int swaps)
        {
            if (Less(d, b, a))
            {
                swaps++;
                return (b, a);
            }

            return (a, b);
        }

        private int Median(Span<T> d, int a, int b, int c, ref int swaps)
        {
            (a, b) = Order2(d, a, b, ref swaps);
            (b, c) = Order2(d, b, c, ref swaps);
            (_, b) = Order2(d, a, b, ref swaps);
            return b;
        }

        private static void ReverseRange(Span<T> d, int a, int b)
        {
            for (int i = a, j = b - 1; i < j; i++, j--)
            {
                Swap(d, i, j);
            }
        }
    }
}
