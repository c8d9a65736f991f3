"""Hand-written multi-turn reference solutions for all 115 MTPB problems, and subtly wrong variants.

Each solution is one completion per turn, written as a model would answer that turn's instruction
(after the history so far). Turns are `string.Template`s filled with the test case's inputs
(``${A}`` becomes ``str(input["A"])``, exactly what the official ``str.format`` puts in the prompt), or
functions of the inputs where the prompt text itself needs interpreting (problem 23).

They serve two purposes:
- the dataset check behind docs/mtpb_errata.md: every (problem, case) whose gold output the
  reference cannot produce was examined by hand, and is either an erratum or a documented note;
- scoring tests: correct solutions must pass every case no excludable erratum covers (and fail
  those), and the `VARIANTS` (one small edit each) must score exactly as listed.

Completions obey the official truncation (no line starting with ``#``, at most one top-level
``print`` and one top-level ``def`` per turn, no blank-line triples), so truncation never changes them.
"""

from __future__ import annotations

from string import Template
from typing import Callable, Union

Turn = Union[str, Callable[[dict], str]]

MORSE = (
    "{'A': '.-', 'B': '-...', 'C': '-.-.', 'D': '-..', 'E': '.', 'F': '..-.', 'G': '--.', 'H': '....', "
    "'I': '..', 'J': '.---', 'K': '-.-', 'L': '.-..', 'M': '--', 'N': '-.', 'O': '---', 'P': '.--.', "
    "'Q': '--.-', 'R': '.-.', 'S': '...', 'T': '-', 'U': '..-', 'V': '...-', 'W': '.--', 'X': '-..-', "
    "'Y': '-.--', 'Z': '--..', ' ': ' ', '0': '-----', '1': '.----', '2': '..---', '3': '...--', "
    "'4': '....-', '5': '.....', '6': '-....', '7': '--...', '8': '---..', '9': '----.', '&': '.-...', "
    "\"'\": '.----.', '@': '.--.-.', ')': '-.--.-', '(': '-.--.', ':': '---...', ',': '--..--', "
    "'=': '-...-', '!': '-.-.--', '.': '.-.-.-', '-': '-....-', '+': '.-.-.', '\"': '.-..-.', "
    "'?': '..--..', '/': '-..-.'}"
)


def _bootstrap_array(inputs: dict) -> str:
    spec = inputs["array"]
    if isinstance(spec, list):
        return f"X = np.array({spec})"
    if "integers" in spec:
        return "X = np.random.randint(0, 11, 1000)"
    return "X = np.random.rand(1000)"


DISTINCT_CHARS = (
    'my_string = "${A}"',
    "my_string = my_string.lower()",
    "chars = set(my_string)",
    "chars = sorted(chars)",
    "print(chars)",
)

SOLUTIONS: dict[int, tuple[Turn, ...]] = {
    1: DISTINCT_CHARS,
    2: (
        "numbers = ${numbers}",
        "total = sum(numbers)",
        "normalized = [x / total * 100 for x in numbers]",
        'formatted = [f"{x:.1f}" for x in normalized]',
        "print(formatted)",
    ),
    3: (
        "def minutes_to_seconds(minutes):\n    return minutes * 60",
        "def hours_to_seconds(hours):\n    return hours * 3600",
        "print(hours_to_seconds(${a1}) + minutes_to_seconds(${a2}))",
    ),
    4: (
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        "def square(x):\n    return x * x",
        "print(square(fib(${a1})))",
    ),
    5: (
        "my_numbers = ${A}",
        "n_neg = sum(1 for x in my_numbers if x < 0)",
        "n_pos = sum(1 for x in my_numbers if x > 0)",
        "print(max(n_neg, n_pos))",
    ),
    6: (
        "import pandas as pd",
        'df = pd.DataFrame({"Yes": [${a1}, ${a2}], "No": [${a3}, ${a4}]})',
        "means = df.mean()",
        "print(means)",
    ),
    7: (
        "def fizzbuzz(n):\n    if n % ${a1} == 0 and n % ${a2} == 0:\n        return \"fizzbuzz\"\n"
        "    if n % ${a1} == 0:\n        return \"fizz\"\n    if n % ${a2} == 0:\n        return \"buzz\"\n    return n",
        "numbers = list(range(${a3}, ${a4} + 1))",
        "new_list = [fizzbuzz(n) for n in numbers]",
        "print(new_list)",
    ),
    8: (
        "def bigrams(text):\n    words = text.split()\n    return list(zip(words, words[1:]))",
        'sentence = "${a1}"',
        "print(bigrams(sentence))",
    ),
    9: (
        'my_notes = dict(zip(["Kevin", "John", "Mike", "Mitch"], [${a1}, ${a2}, ${a3}, ${a4}]))',
        'def top_note(student):\n    return {"name": student["name"], "top_note": max(student["notes"])}',
        'my_list = [(name, top_note({"name": name, "notes": notes})["top_note"]) for name, notes in my_notes.items()]',
        "top_name = max(my_list, key=lambda pair: pair[1])[0]",
        "print(top_name)",
    ),
    10: (
        "def to_binary(hex_number):\n    return bin(hex_number)[2:]",
        "def to_hex(binary):\n    return int(binary, 2)",
        "my_hex = ${a1}",
        "my_binary = to_binary(my_hex)",
        "result = to_hex(my_binary)",
        "print(result)",
    ),
    11: (
        "my_dict = dict(zip(${a1}, ${a2}))",
        "def invert(d):\n    return {v: k for k, v in d.items()}",
        "def is_inverted(d1, d2):\n    return invert(d1) == d2",
        'my_dict2 = invert(my_dict) if "${a3}" == "inverted" else my_dict',
        "print(is_inverted(my_dict, my_dict2))",
    ),
    12: (
        "class Player:\n    def __init__(self, name, age, height, weight):\n        self.name = name\n"
        "        self.age = age\n        self.height = height\n        self.weight = weight",
        "class Player:\n    def __init__(self, name, age, height, weight):\n        self.name = name\n"
        "        self.age = age\n        self.height = height\n        self.weight = weight\n\n"
        "    def get_age(self):\n        return f\"{self.name} is age {self.age}\"\n\n"
        "    def get_height(self):\n        return f\"{self.name} is {self.height} cm\"\n\n"
        "    def get_weight(self):\n        return f\"{self.name} weighs {self.weight} kg\"",
        'player = Player("${a1}", ${a2}, ${a3}, ${a4})',
        'print(getattr(player, "get_${a5}")())',
    ),
    13: (
        "def num_len(num):\n    return len(str(num))",
        "my_list = ${a1}",
        "print(max(my_list, key=num_len))",
    ),
    14: (
        "from sklearn.linear_model import LinearRegression",
        "import math",
        "x = list(range(0, 11))",
        "def f(v):\n    return v * 2",
        "y = np.array([f(v) for v in x])",
        "model = LinearRegression()",
        "model.fit(np.array(x).reshape(-1, 1), y.reshape(-1, 1))",
        "x_hat = model.predict([[${a1}]])",
        "print(int(math.ceil(x_hat[0][0])))",
    ),
    15: (
        "def encrypt(text):\n    out = \"\"\n    for ch in text:\n        if ch.islower():\n"
        "            out += chr((ord(ch) - 97 + 2) % 26 + 97)\n        else:\n            out += ch\n    return out",
        "def decrypt(text):\n    out = \"\"\n    for ch in text:\n        if ch.islower():\n"
        "            out += chr((ord(ch) - 97 - 2) % 26 + 97)\n        else:\n            out += ch\n    return out",
        'original_text = "${a1}"',
        "encrypted_text = encrypt(original_text)",
        "restored_text = decrypt(encrypted_text)",
        "my_result = [restored_text, encrypted_text]",
        "print(my_result)",
    ),
    16: (
        "class Person:\n    def __init__(self, name, id):\n        self.name = name\n        self.id = id",
        "class Person:\n    def __init__(self, name, id):\n        self.name = name\n        self.id = id\n\n"
        "    def __hash__(self):\n        return hash(self.${a1})",
        "class Person:\n    def __init__(self, name, id):\n        self.name = name\n        self.id = id\n\n"
        "    def __hash__(self):\n        return hash(self.${a1})\n\n"
        "    def __eq__(self, other):\n        return hash(self) == hash(other)",
        'persons = [Person(name, i) for name, i in zip(["Person A", "Person B", "Person ${a3}"], [${a2}])]',
        "unique_persons = set(persons)",
        "print(len(unique_persons))",
    ),
    17: (
        "_str, _int = str, int\nstr = lambda x: _int(x)\nint = lambda x: _str(x)",
        "def int_to_str(i):\n    return str(i)",
        "def str_to_int(s):\n    return int(s)",
        'my_result = [int_to_str(${a1}), str_to_int("${a1}")]',
        "print(my_result)",
    ),
    18: (
        f"chars_to_dots = {MORSE}",
        'def encode_morse(text):\n    return " / ".join(" ".join(chars_to_dots[c] for c in word) for word in text.upper().split(" "))',
        'def decode_morse(code):\n    dots_to_chars = {v: k for k, v in chars_to_dots.items()}\n'
        '    return " ".join("".join(dots_to_chars[c] for c in word.split(" ")) for word in code.split(" / "))',
        "morse_code = encode_morse('${a1}')",
        "decoded_text = decode_morse(morse_code)",
        "print(decoded_text)",
    ),
    19: (
        "nums = ${a1}\ntarget = ${a2}",
        "def two_sum(nums, target):\n    seen = {}\n    for i, v in enumerate(nums):\n"
        "        if target - v in seen:\n            return [seen[target - v], i]\n        seen[v] = i",
        "print(two_sum(nums, target))",
    ),
    20: (
        "def sample_points(n, x_mean, y_mean, x_std, y_std):\n"
        "    return np.column_stack([np.random.normal(x_mean, x_std, n), np.random.normal(y_mean, y_std, n)])",
        "points1 = sample_points(100, ${a1}, ${a1}, 1, 1)",
        "points2 = sample_points(100, -${a1}, -${a1}, 1, 1)",
        "points = np.concatenate([points1, points2])",
        "def kmeans(points, k, n):\n    centroids = points[np.random.choice(len(points), k, replace=False)]\n"
        "    for _ in range(n):\n"
        "        labels = np.argmin(((points[:, None, :] - centroids[None, :, :]) ** 2).sum(-1), axis=1)\n"
        "        centroids = np.array([points[labels == j].mean(0) if np.any(labels == j) else centroids[j] for j in range(k)])\n"
        "    return centroids",
        "my_centroids = kmeans(points, 2, 100)",
        "c1, c2 = sorted(my_centroids.tolist())\n"
        'print(f"({round(c1[0])}, {round(c1[1])}), ({round(c2[0])}, {round(c2[1])})")',
    ),
    21: (
        "elements = ${numbers}",
        "even = sum(x for x in elements if x % 2 == 0)",
        "odd = sum(x for x in elements if x % 2 != 0)",
        "my_result = [even, odd]",
        "print(my_result)",
    ),
    22: (
        "elements = ${lst}",
        "zero_count = sum(1 for x in elements if type(x) is int and x == 0)",
        "non_zero = [x for x in elements if not (type(x) is int and x == 0)]",
        "result = non_zero + [0] * zero_count\nprint(result)",
    ),
    23: (
        _bootstrap_array,
        "def bootstrap(arr):\n    return np.random.choice(arr, size=len(arr), replace=True)",
        "samples = np.stack([bootstrap(X) for _ in range(${n})])",
        "mean = samples.mean(axis=1)",
        "percentile = [np.percentile(mean, 2.5), np.percentile(mean, 97.5)]",
        "print(percentile)",
    ),
    24: (
        "my_digits = [d for d in range(min(${a}, ${b}), max(${a}, ${b}) + 1) if d % 2 == 0 and d < 10]",
        "result = sum(my_digits)",
        "print(int(result))",
    ),
    25: (
        "my_max = max(${A})",
        "my_min = min(${A})",
        "diff = my_max - my_min",
        "print(diff)",
    ),
    26: DISTINCT_CHARS,
    27: (
        'a = "${A}"\nb = "${B}"',
        "def len_str(s):\n    return len(s)",
        "len_a = len_str(a)\nlen_b = len_str(b)",
        "result = a if len_a > len_b else b",
        "print(result)",
    ),
    28: (
        "f = ${A}",
        "a = int(f)",
        'b = int(str(f).split(".")[1])',
        "print(a + b)",
    ),
    29: (
        'my_string = "${s}"',
        "my_string = my_string.lower()",
        'count = sum(1 for c in my_string if c in "aeiou")',
        "print(count)",
    ),
    30: (
        "f = ${n}",
        "numbers = list(range(1, f + 1))",
        "factorial = 1",
        "for v in numbers:\n    factorial *= v",
        "print(factorial)",
    ),
    31: (
        "two_edges = ${a} + ${b}",
        "maximum_edge = two_edges - 1",
        "minimum_edge = abs(${a} - ${b}) + 1",
        "my_tuple = (maximum_edge, minimum_edge)",
        "print(my_tuple)",
    ),
    32: (
        "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result",
        "def remainder(n):\n    return n % 10",
        "print(remainder(factorial(${n})))",
    ),
    33: (
        "n = ${n}",
        "degrees = (n - 2) * 180",
        "import math\nradians = math.radians(degrees)",
        "radians = round(radians, 2)",
        "print(radians)",
    ),
    34: (
        's1 = "${s1}"\ns2 = "${s2}"',
        "a = int(s1)\nb = int(s2)",
        "s = a + b",
        "print(s)",
    ),
    35: (
        "lst = ${l}",
        "ma = max(lst)",
        "mi = min(lst)",
        "numbers = list(range(mi, ma + 1))",
        "print(sum(numbers))",
    ),
    36: (
        "def shared(a, b):\n    return [c for c in a if c in b]",
        'def count_vowels(s):\n    return sum(1 for c in s if c in "aeiou")',
        's = "".join(shared("${s1}", "${s2}"))',
        "print(count_vowels(s))",
    ),
    37: (
        "lst1 = ${l}",
        "lst2 = [x for x in lst1 if x < 0]",
        "total = sum(lst2)",
        "print(total)",
    ),
    38: (
        "import pandas as pd",
        'df = pd.read_csv("./datasets/mlbootcamp5_train.csv")',
        'my_counts = df.groupby("gender")["${a1}"].value_counts()',
        "plain_list = my_counts.values",
        "print(max(plain_list))",
    ),
    39: (
        "s = '${s}'",
        'import re\npattern = re.compile(r"[,.]")',
        's2 = pattern.sub("", s)',
        "words = s2.split()",
        "print([len(w) for w in words])",
    ),
    40: (
        "s = '${s}'",
        "s2 = s.lower()",
        'import re\npattern3 = re.compile(r"^#[0-9a-f]{3}$$")',
        'pattern6 = re.compile(r"^#[0-9a-f]{6}$$")',
        "print(bool(pattern3.match(s2) or pattern6.match(s2)))",
    ),
    41: (
        "def count_values(lst):\n    counts = {}\n    for v in lst:\n        counts[v] = counts.get(v, 0) + 1\n    return counts",
        "counts = count_values(${lst})",
        "best = max(counts, key=counts.get) if counts else None\n"
        "print(best if best is not None and counts[best] > len(${lst}) / 2 else None)",
    ),
    42: (
        "import datetime\ntoday = datetime.datetime(${year}, ${month}, ${day})",
        "week = today + datetime.timedelta(days=7)",
        "print(week.strftime('%m/%d/%Y'))",
    ),
    43: (
        "def word_weight(word):\n    return sum(ord(c) for c in word if c.isalpha())",
        "words = ${words}\nweights = [word_weight(w) for w in words]",
        "print(sorted(weights) == weights)",
    ),
    44: (
        "def is_palindrome(n):\n    return str(n) == str(n)[::-1]",
        "def descent(n):\n    digits = str(n)\n"
        '    return int("".join(str(sum(int(d) for d in digits[i:i + 2])) for i in range(0, len(digits), 2)))',
        "base = ${n}",
        "while len(str(base)) > 1:\n    if is_palindrome(base):\n        break\n    base = descent(base)",
        "print(len(str(base)) > 1)",
    ),
    45: (
        "input = '${input}'\nstack = []",
        "for ch in input:\n    if ch == '@':\n        if stack:\n            stack.pop()\n    else:\n        stack.append(ch)",
        'print("".join(stack))',
    ),
    46: (
        "import pandas as pd",
        "from sklearn.model_selection import train_test_split\ndf = pd.read_csv('./datasets/melb_data.csv')",
        "y = df.Price",
        "melb_predictors = df.drop(['Price'], axis=1)",
        "X = melb_predictors.select_dtypes(exclude=['object'])",
        "x_train, x_valid, y_train, y_valid = train_test_split(X, y, train_size=${a1} / 100, test_size=${a2} / 100, random_state=0)",
        'print("{:.1f} {:.1f}".format(x_train.iloc[:, 0].sum(), y_train.sum()))',
    ),
    47: (
        "lst1 = ${l}",
        "a = min(lst1)\nb = max(lst1)",
        "lst2 = list(range(a, b + 1))",
        "missing = [x for x in lst2 if x not in lst1]",
        "print(sum(missing))",
    ),
    48: (
        "lst1 = ${l}",
        "def num_in_str(s):\n    return any(c.isdigit() for c in s)",
        "lst2 = [s for s in lst1 if num_in_str(s)]",
        "print(lst2)",
    ),
    49: (
        "def a(x):\n    return x * ${a1}",
        "def b(x):\n    return x * ${a2}",
        "def c(x):\n    return x * ${a3}",
        "abc = [a, b, c]",
        "my_init = ${a4}",
        "my_result = abc[0](my_init)",
        "for fn in abc[1:]:\n    my_result = fn(my_result)",
        "print(my_result)",
    ),
    50: (
        'def to_plural(words):\n    return {w + "s" if words.count(w) > 1 else w for w in words}',
        'def is_plural(word):\n    return word.endswith("s")',
        "words = ${a1}",
        "words_plural = to_plural(words)",
        "contains_plural = any(is_plural(w) for w in words_plural)",
        "print(contains_plural)",
    ),
    51: (
        "my_relative_altitude = ${A}",
        "my_net_altitude = [0]\nfor v in my_relative_altitude:\n    my_net_altitude.append(my_net_altitude[-1] + v)",
        "print(max(my_net_altitude))",
    ),
    52: (
        "my_sentences = ${A}",
        "k = ${K}",
        "truncated_list = my_sentences[:k]",
        "print(truncated_list)",
    ),
    53: (
        "my_numbers = ${A}",
        "from collections import Counter\nfrequencies = Counter(my_numbers)",
        "one_time = [v for v, c in frequencies.items() if c == 1][0]",
        "print(one_time)",
    ),
    54: (
        "my_numbers = ${A}",
        "val = ${Val}",
        "remove_numbers = [x for x in my_numbers if x != val]",
        "print(remove_numbers)",
    ),
    55: (
        "my_numbers = ${A}",
        "val = ${Val}",
        "sum_numbers = sum(my_numbers)",
        '"True" if sum_numbers == val else "False"',
    ),
    56: (
        "my_numbers1 = ${A}",
        "my_numbers2 = ${B}",
        "new_list = sorted(my_numbers1 + my_numbers2)",
        "print(new_list)",
    ),
    57: (
        "my_array = ${A}",
        "best, best_range, current, start = my_array[0], (0, 1), 0, 0\n"
        "for i, v in enumerate(my_array):\n    if current <= 0:\n        current, start = v, i\n"
        "    else:\n        current += v\n    if current > best:\n        best, best_range = current, (start, i + 1)\n"
        "max_subarray = my_array[best_range[0]:best_range[1]]",
        "sum_subarry = sum(max_subarray)",
        "print(sum_subarry)",
    ),
    58: (
        "my_number = ${A}",
        "import math\nsquare_root = math.sqrt(my_number)",
        "largest_square_root = math.floor(square_root)",
        "print(int(largest_square_root))",
    ),
    59: (
        "my_words = ${A}",
        "word_count = {w: len(w) for w in my_words}",
        "longest_word = max(word_count, key=word_count.get)",
        "print(longest_word)",
    ),
    60: (
        "my_numbers = ${A}",
        "my_uniques = [x for x in my_numbers if my_numbers.count(x) == 1]",
        "print(sum(my_uniques))",
    ),
    61: (
        "my_matrix = ${A}",
        "diag_elements = np.diagonal(np.atleast_2d(my_matrix))",
        "print(sum(diag_elements))",
    ),
    62: (
        "my_matrix = ${A}",
        "t = ${T}",
        "result = np.linalg.cond(my_matrix)",
        '"True" if result < t else "False"',
    ),
    63: (
        "a = ${A}",
        "b = ${B}",
        "result = np.matmul(a, b)",
        "print(result.sum())",
    ),
    64: (
        "a = ${A}",
        "b = ${B}",
        "def determinant(m):\n    return round(float(np.linalg.det(m)), 6)",
        'print("True" if determinant(a) > determinant(b) else "False")',
    ),
    65: (
        "my_numbers = ${A}",
        "def exp_list(values):\n    return np.exp(values)",
        "def sum_list(values):\n    return sum(values)",
        "def log_number(x):\n    return np.log(x)",
        "m = max(my_numbers)\nprint(m + log_number(sum_list(exp_list([v - m for v in my_numbers]))))",
    ),
    66: (
        "my_points = ${A}",
        "k = ${K}",
        "def distance(p):\n    return (p[0] ** 2 + p[1] ** 2) ** 0.5",
        "def k_closest(points, k):\n    return sorted(points, key=distance)[:k]",
        "result = k_closest(my_points, k)\nprint(result if k > 1 else result[0])",
    ),
    67: (
        "def LCP(a, b):\n    i = 0\n    while i < min(len(a), len(b)) and a[i] == b[i]:\n        i += 1\n    return a[:i]",
        "lst1 = ${l1}",
        "prefix = lst1[0]\nfor word in lst1[1:]:\n    prefix = LCP(prefix, word)",
        "print(prefix)",
    ),
    68: (
        "lst1 = ${lst1}",
        "from collections import Counter\nfreq = Counter(lst1)",
        "lst2 = [v for v, c in freq.items() if c > 1]",
        "print(lst2)",
    ),
    69: (
        "w1 = '${w}'",
        "first = next(c for c in w1 if w1.count(c) == 1)",
        "n1 = w1.index(first)",
        "print(n1)",
    ),
    70: (
        "sentence1 = '${s1}'",
        "sentence2 = '${s2}'",
        "words1 = sentence1.split()",
        "words2 = sentence2.split()",
        "from collections import Counter\ncounts = Counter(words1 + words2)\n"
        "uncommon_words = [w for w in counts if counts[w] == 1]",
        "print(uncommon_words)",
    ),
    71: (
        "sentence1 = '${s1}'",
        "words1 = sentence1.split()",
        "import string\nwords1 = [w.strip(string.punctuation) for w in words1]",
        "avg = sum(len(w) for w in words1) / len(words1)",
        "print(avg)",
    ),
    72: (
        'w1 = "${w1}"\nw2 = "${w2}"',
        "w1 = w1.lower()\nw2 = w2.lower()",
        "from collections import Counter\nf1 = Counter(w1)\nf2 = Counter(w2)",
        "print(f1 == f2)",
    ),
    73: (
        'w1 = "${w}"',
        "w2 = w1[::-1]",
        "print(w2)",
    ),
    74: (
        "num = ${n}",
        "lst1 = list(range(1, num + 1))",
        "n1 = sum(x ** 2 for x in lst1)",
        "n2 = sum(lst1) ** 2",
        "print(n1 - n2)",
    ),
    75: (
        "vec1 = ${lst1}",
        "vec2 = ${lst2}",
        "vec1 = np.array(vec1) / np.linalg.norm(vec1)",
        "vec2 = np.array(vec2) / np.linalg.norm(vec2)",
        "dot = np.dot(vec1, vec2)",
        "print(dot)",
    ),
    76: (
        "vec1 = ${lst1}",
        "vec2 = ${lst2}",
        "vec3 = ${lst3}",
        "vec1, vec2, vec3 = np.array(vec1), np.array(vec2), np.array(vec3)",
        "def dist(a, b):\n    return np.linalg.norm(a - b)",
        "d1 = dist(vec1, vec2)",
        "d2 = dist(vec1, vec3)",
        "print(d1 > d2)",
    ),
    77: (
        "lst1 = ${l1}",
        "lst2 = ${l2}",
        "def std(values):\n    mean = sum(values) / len(values)\n"
        "    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5",
        "std1, std2 = std(lst1), std(lst2)",
        "print(min(std1, std2))",
    ),
    78: (
        "lst1 = ${l1}",
        "lst2 = ${l2}",
        "def mean(values):\n    return sum(values) / len(values)",
        "mean1, mean2 = mean(lst1), mean(lst2)",
        "print(min(mean1, mean2))",
    ),
    79: (
        "lst1 = ${l1}",
        "avg = np.mean(lst1)\nsd = np.std(lst1)",
        "cv = sd / avg",
        "print(cv)",
    ),
    80: (
        "lst1 = ${l1}",
        "lst2 = [abs(x) for x in lst1]",
        "l1 = sum(lst2)",
        "print(l1)",
    ),
    81: (
        "lst1 = ${lst1}",
        "mean = np.mean(lst1)",
        "sd = np.std(lst1, ddof=1)",
        "z = mean / (sd / np.sqrt(len(lst1)))",
        "print(z)",
    ),
    82: (
        "lst1 = ${lst}",
        "lst_pos = [x for x in lst1 if x >= 0]\nlst_neg = [x for x in lst1 if x < 0]",
        "lst2 = lst_pos + lst_neg",
        "print(lst2)",
    ),
    83: (
        'w = "${w}"',
        "w = w.lower()",
        'import re\nw = re.sub("[a-z]", "", w)',
        "print(w)",
    ),
    84: (
        "X = np.array(${X})",
        "Xn = X @ X.T",
        "np.fill_diagonal(Xn, 0)",
        "print(float(Xn.max()))",
    ),
    85: (
        "pred = np.array(${pred})\ny = np.array(${y})",
        "match = pred == y",
        "non_zero = y > 0",
        "correct = np.logical_and(match, non_zero)",
        "prec = correct.sum() / (pred > 0).sum()",
        "rec = correct.sum() / non_zero.sum()",
        "print(2 * prec * rec / (prec + rec))",
    ),
    86: (
        'concat = "${x}"',
        'import re\npat = re.compile(r"([A-Z])")',
        'result = pat.sub(r" \\1", concat)',
        "print(result)",
    ),
    87: (
        "x = ${x}",
        "mean = np.mean(x)\nstd = np.std(x)",
        "results = [v for v in x if v < mean - 2 * std or v > mean + 2 * std]",
        "print(sorted(results))",
    ),
    88: (
        "x = ${x}",
        "vocab = sorted(set(x))",
        "v2i = {v: i for i, v in enumerate(vocab)}",
        "features = np.zeros((len(x), len(vocab)), dtype=int)",
        "for i, v in enumerate(x):\n    features[i, v2i[v]] = 1",
        "print(features)",
    ),
    89: (
        "x = ${x}",
        "mapped = [${fun}(v) for v in x]",
        "mapped = [v.__name__ if isinstance(v, type) else str(v) for v in mapped]",
        "results = {k: [] for k in mapped}",
        "for m, v in zip(mapped, x):\n    results[m].append(v)",
        "print(results)",
    ),
    90: (
        "best = -1\narray = ${array}",
        "minimum = array[0]",
        "for v in array[1:]:\n    if v - minimum > best:\n        best = v - minimum\n    if v < minimum:\n        minimum = v",
        "print(best)",
    ),
    91: (
        "target = ${target}\nnums = ${nums}\nresult = []",
        "for i, v in enumerate(nums):\n    if v == target:\n        result.append(i)",
        "print(sum(result))",
    ),
    92: (
        "nums = ${nums}\nN = ${N}",
        "all_nums = set(range(1, N + 1))",
        "diff = all_nums - set(nums)",
        "print(diff.pop())",
    ),
    93: (
        "X = ${x}",
        "common = set(X[0])",
        "for row in X:\n    common = common & set(row)",
        "print(list(common))",
    ),
    94: (
        "start = ${start}\nseq = [${start}]",
        "while start != 1:\n    start = start // 2 if start % 2 == 0 else 3 * start + 1\n    seq.append(start)",
        "results = sum(seq)",
        "print(results)",
    ),
    95: (
        'pos = "${start}"\nswap = ${swap}',
        'def move(x, y):\n    return y.replace(x, "")',
        "for s in swap:\n    if pos in s:\n        pos = move(pos, s)",
        "print(pos)",
    ),
    96: (
        "stack = []\nnum = str(${x})",
        "for ch in num:\n    stack.append(ch)",
        'result = ""\nwhile stack:\n    result += stack.pop()',
        "print(int(result))",
    ),
    97: (
        'arrows = ${x}\njoined_arrow = "".join(arrows)',
        'left = joined_arrow.count("<")\nright = joined_arrow.count(">")',
        'if right > left:\n    print(">" * (right - left))',
        'else:\n    print("<" * (left - right))',
    ),
    98: (
        "array = ${x}",
        "diff = max(array) - min(array)",
        "result = diff in array",
        "print(result)",
    ),
    99: (
        'original = "${x}"',
        "from collections import OrderedDict\ndic = OrderedDict((c, 0) for c in original)",
        "for c in original:\n    dic[c] += 1",
        'result = ""\nfor k, v in dic.items():\n    result += k + str(v)',
        "print(result)",
    ),
    100: (
        'import re\npattern = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\\.[A-Za-z0-9.-]+")',
        'address = pattern.search("${x}").group(0)',
        'address = address[:address.index("@")]',
        'address = re.sub("[^A-Za-z]", " ", address)',
        "print(address)",
    ),
    101: (
        "my_numbers = ${A}",
        "def distinct(values):\n    return list(set(values))",
        "unique_list = distinct(my_numbers)",
        "ordered = sorted(unique_list)\nprint(ordered[-2] if len(ordered) > 1 else ordered[-1])",
    ),
    102: (
        "my_numbers = ${A}",
        "def prefix_sum(values):\n    out, total = [], 0\n    for v in values:\n        total += v\n        out.append(total)\n    return out",
        "prefix_sum_list = prefix_sum(my_numbers)",
        "print(max(prefix_sum_list))",
    ),
    103: (
        "my_numbers = ${A}",
        "distances = [abs(x) for x in my_numbers]",
        "closest_number = min(my_numbers, key=abs)",
        "print(abs(closest_number))",
    ),
    104: (
        'my_string = "${A}"',
        "def all_unique(s):\n    return len(set(s)) == len(s)",
        "result_substring = max((my_string[i:j] for i in range(len(my_string)) "
        "for j in range(i + 1, len(my_string) + 1) if all_unique(my_string[i:j])), key=len)",
        "print(len(result_substring))",
    ),
    105: (
        'my_string = "${A}"',
        "repeated = [c for c in set(my_string) if my_string.count(c) > 1]",
        "frequencies = {c: my_string.count(c) for c in repeated}",
        "print(max(frequencies.values()) if frequencies else 0)",
    ),
    106: (
        'my_string = "${A}"',
        "def is_palindrome(s):\n    return s == s[::-1]",
        "palindromes = [my_string[i:j] for i in range(len(my_string)) "
        "for j in range(i + 1, len(my_string) + 1) if is_palindrome(my_string[i:j])]",
        "print(max(len(p) for p in palindromes))",
    ),
    107: (
        "my_integer = ${A}",
        "def is_prime(n):\n    if n < 2:\n        return False\n    return all(n % d for d in range(2, int(n ** 0.5) + 1))",
        "prime_result = [n for n in range(my_integer) if is_prime(n)]",
        "print(len(prime_result))",
    ),
    108: (
        "my_array = ${A}",
        "k = ${K}",
        "def rotate_one(arr):\n    return arr[-1:] + arr[:-1]",
        "rotated_result = my_array\nfor _ in range(k):\n    rotated_result = rotate_one(rotated_result)",
        "print(rotated_result)",
    ),
    109: (
        "my_array = ${A}",
        "my_sum = sum(my_array)",
        "def can_partition(arr):\n    if sum(arr) % 2:\n        return False\n    reachable = {0}\n"
        "    for v in arr:\n        reachable |= {r + v for r in reachable}\n    return sum(arr) // 2 in reachable",
        "print(can_partition(my_array))",
    ),
    110: (
        "my_number = ${A}",
        "root_number = my_number ** 0.5",
        "def integer_part(x):\n    return int(x)",
        "print(integer_part(root_number))",
    ),
    111: (
        "my_number = ${A}",
        "plus_number = my_number + 1",
        "def digits(n):\n    return [int(d) for d in str(n)]",
        "print(digits(plus_number))",
    ),
    112: (
        "my_number = ${A}",
        "def square_sum(a, b):\n    return a * a + b * b",
        "def is_square_sum(n):\n    r = int(n ** 0.5) + 1\n"
        "    return any(square_sum(a, b) == n for a in range(r) for b in range(r))",
        'print("True" if is_square_sum(my_number) else "False")',
    ),
    113: (
        "my_array = ${A}",
        "def std(arr):\n    return float(np.std(arr))",
        "result = std(my_array)",
        'print("True" if result < 1 else "False")',
    ),
    114: (
        "my_matrix = ${A}",
        "row_number = len(my_matrix)",
        "column_number = len(my_matrix[0])",
        "print(row_number + column_number)",
    ),
    115: (
        "my_array = ${A}",
        "mean_number = np.mean(my_array)",
        "median_number = np.median(my_array)",
        "print(mean_number - median_number)",
    ),
}

T, F = True, False

# Edited solutions: (turn index, text replaced, replacement, expected official verdict per case).
# Most are subtly wrong; 96 and 31's tuple show what the official casts let through.
VARIANTS: dict[int, tuple[int, str, str, tuple[bool, ...]]] = {
    2: (3, "x:.1f", "x:.2f", (F, F, T, F, F)),  # math: one decimal too many ([] still matches)
    3: (0, "minutes * 60", "minutes * 100", (F, F, F, F, F)),
    4: (0, "range(n)", "range(n - 1)", (F, T, F, F, F)),  # off by one: fib(1) == fib(2)
    6: (2, "df.mean()", "df.mean(axis=1)", (F, F, F, F, F)),  # data science: row means, a Series
    8: (0, "list(zip(words, words[1:]))", '[" ".join(p) for p in zip(words, words[1:])]', (F, F, F, F, F)),
    9: (3, "max(my_list", "min(my_list", (F, F, F, F, F)),  # dict
    12: (1, "is {self.height} cm", "is {self.height}cm", (T, T, F, F, T)),  # class: only height cases
    16: (2, "hash(self) == hash(other)", "self is other", (F, T, F, T, F)),  # class: identity equality
    19: (1, "[seen[target - v], i]", "[target - v, v]", (T, F, F, F, F)),  # values, not indices
    22: (1, "sum(1 for x in elements if type(x) is int and x == 0)", "elements.count(0)", (T, T, T, T, F)),
    31: (3, "(maximum_edge, minimum_edge)", "(minimum_edge, maximum_edge)", (F, F, F, T, F)),
    33: (3, "round(radians, 2)", "round(radians, 1)", (F, F, F, F, F)),  # float tolerance is 1e-6
    42: (2, "%m/%d/%Y", "%d/%m/%Y", (F, F, F, F, F)),  # string
    50: (1, 'endswith("s")', 'endswith("es")', (F, F, F, T, T)),
    61: (1, "np.diagonal(np.atleast_2d(my_matrix))", "np.diag(my_matrix)", (T, T, F, T, F)),
    65: (4, "m = max(my_numbers)", "m = 0", (T, F, T, T, T)),  # exp(1000) overflows to inf
    75: (3, "np.linalg.norm(vec2)", "np.sum(vec2)", (F, F, F, F, F)),
    85: (4, "(pred > 0).sum()", "len(pred)", (F, F, F, T, F)),
    94: (0, "seq = [", "seq = [] and [", (F, F, F, F, F)),  # drops the start value
    96: (3, "print(int(result))", "print(result)", (T, T, T, T, T)),  # str, cast to the gold int
    104: (2, "range(i + 1, len(my_string) + 1)", "range(i + 1, len(my_string))", (T, T, F, T, T)),
    107: (2, "range(my_integer)", "range(my_integer + 1)", (T, T, T, T, F)),  # 17 counted as < 17
    109: (3, "print(can_partition(my_array))", "print(str(can_partition(my_array)).lower())", (F, F, F, F, F)),
}


def fill(turn: Turn, inputs: dict) -> str:
    if callable(turn):
        return turn(inputs)
    return Template(turn).substitute({k: str(v) for k, v in inputs.items()})


def completions(problem_id: int, inputs: dict, variant: bool = False) -> list[str]:
    """The per-turn completions of the reference (or its edited variant) for one test case."""
    turns = [fill(t, inputs) for t in SOLUTIONS[problem_id]]
    if variant:
        index, old, new, _ = VARIANTS[problem_id]
        if old not in turns[index]:
            raise AssertionError(f"problem {problem_id}: {old!r} not in turn {index}: {turns[index]!r}")
        turns[index] = turns[index].replace(old, new, 1)
    return turns
